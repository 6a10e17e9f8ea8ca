// A Subsonic session with the `subsonic-api` client from npm, against a moodscape server.
// Usage: node subsonic_session.mjs BASE_URL USER PASSWORD API_KEY [ARTIST]
// Browses ARTIST's albums (every artist's when empty or left out) for one with two songs that have
// files, as a player would, and works with those songs: the server's titles need not be known here.
// Prints one JSON object: what each call answered, for tests/api/test_subsonic_clients.py to check.
import { SubsonicAPI } from "subsonic-api";

const [base, username, password, apiKey, artistName = ""] = process.argv.slice(2);
const extraHeaders = {};
const fetchWithHeaders = (url, init = {}) =>
  fetch(url, { ...init, headers: { ...(init.headers || {}), ...extraHeaders } });

const summary = (response) => ({
  status: response.status,
  failed: response.status === "failed" ? response.error : undefined,
  openSubsonic: response.openSubsonic,
  type: response.type,
});

async function ranged(call) {
  extraHeaders.Range = "bytes=0-99";
  try {
    const response = await call();
    const body = Buffer.from(await response.arrayBuffer());
    return { http: response.status, contentRange: response.headers.get("content-range"), hex: body.toString("hex") };
  } finally {
    delete extraHeaders.Range;
  }
}

// The first album (of `artistName`, else of any artist in index order) with two songs that have files.
async function albumWithFiles(api, artists) {
  for (const artist of artists.filter((found) => !artistName || found.name === artistName)) {
    const albums = (await api.getArtist({ id: artist.id })).artist.album;
    for (const listed of albums) {
      const album = (await api.getAlbum({ id: listed.id })).album;
      const songs = album.song.filter((song) => song.suffix);
      if (songs.length >= 2) return { albums, album, songs };
    }
  }
  throw new Error(`no album of ${artistName || "any artist"} has two songs with audio files`);
}

// The word of a title a listener would type: its longest, lower-cased.
const searchWord = (title) => title.split(/\s+/).reduce((a, b) => (b.length > a.length ? b : a)).toLowerCase();

async function passwordSession() {
  const api = new SubsonicAPI({ url: base, auth: { username, password }, fetch: fetchWithHeaders });
  const out = {};
  out.ping = summary(await api.ping());
  out.extensions = (await api.getOpenSubsonicExtensions()).openSubsonicExtensions.map((e) => e.name);
  out.musicFolders = (await api.getMusicFolders()).musicFolders.musicFolder.length;
  const artists = (await api.getArtists()).artists.index.flatMap((index) => index.artist);
  out.artists = artists.map((artist) => artist.name);
  const { albums, album, songs } = await albumWithFiles(api, artists);
  out.artistAlbums = albums.map((listed) => listed.name);
  out.albumSongs = album.song.map((song) => song.title);
  const [first, second] = songs;
  const song = (await api.getSong({ id: first.id })).song;
  out.song = { id: song.id, title: song.title, artist: song.artist, suffix: song.suffix, moodscape: song.moodscape };
  out.albumList = (await api.getAlbumList2({ type: "alphabeticalByName", size: 500 })).albumList2.album.length;
  const word = searchWord(second.title);
  const hits = (await api.search3({ query: word })).searchResult3.song || [];
  out.search = { word, ids: hits.map((hit) => hit.id), titles: hits.map((hit) => hit.title) };
  const random = (await api.getRandomSongs({ size: 5, minArousal: 0.6 })).randomSongs.song || [];
  out.randomArousal = random.map((hit) => hit.moodscape.arousal);
  out.genres = (await api.getGenres()).genres.genre.length;
  out.similar = ((await api.getSimilarSongs2({ id: first.id, count: 5 })).similarSongs2.song || []).map((hit) => hit.id);
  const sonic = await api.customJSON("getSonicSimilarTracks.view", { id: first.id, count: 5 });
  out.sonicSimilar = sonic.sonicMatch.map((match) => match.similarity);
  const path = await api.customJSON("findSonicPath.view", { startSongId: first.id, endSongId: second.id, count: 6 });
  out.sonicPath = path.sonicMatch.map((match) => match.entry.id);
  out.sonicPathEnds = [first.id, second.id];
  out.stream = await ranged(() => api.stream({ id: first.id }));
  const cover = await api.getCoverArt({ id: first.id });
  const coverType = cover.headers.get("content-type");
  out.cover = coverType.startsWith("application/json")
    ? { http: cover.status, type: coverType, error: (await cover.json())["subsonic-response"].error }
    : { http: cover.status, type: coverType, bytes: (await cover.arrayBuffer()).byteLength };
  const created = (await api.createPlaylist({ name: "JS mix", songId: [first.id, second.id] })).playlist;
  out.created = { name: created.name, songs: created.entry.map((entry) => entry.id) };
  out.playlists = (await api.getPlaylists()).playlists.playlist.map((playlist) => playlist.name);
  out.playlist = (await api.getPlaylist({ id: created.id })).playlist.entry.length;
  await api.updatePlaylist({ playlistId: created.id, name: "JS mix 2", songIndexToRemove: [0], songIdToAdd: [first.id] });
  const updated = (await api.getPlaylist({ id: created.id })).playlist;
  out.updated = { name: updated.name, songs: updated.entry.map((entry) => entry.id) };
  out.deleted = summary(await api.deletePlaylist({ id: created.id }));
  out.playlistsAfter = ((await api.getPlaylists()).playlists.playlist || []).map((playlist) => playlist.name);
  return out;
}

async function apiKeySession() {
  const api = new SubsonicAPI({ url: base, auth: { apiKey }, post: true, fetch: fetchWithHeaders });
  const song = (await api.search3({ query: "" })).searchResult3.song[0];
  return { ping: summary(await api.ping()), streamed: song.id, stream: await ranged(() => api.stream({ id: song.id })) };
}

async function refusals() {
  const wrong = new SubsonicAPI({ url: base, auth: { username, password: "not-the-password" } });
  const response = await wrong.custom("ping.view", {});
  const body = await response.json();
  const bare = await fetch(`${base}/rest/ping.view?f=json&v=1.16.1&c=node`);
  return {
    wrongPassword: { http: response.status, error: body["subsonic-response"].error },
    missingAuth: { http: bare.status, error: (await bare.json())["subsonic-response"].error },
  };
}

const result = { password: await passwordSession(), apiKey: await apiKeySession(), refused: await refusals() };
console.log(JSON.stringify(result));
