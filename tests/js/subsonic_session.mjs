// A Subsonic session with the `subsonic-api` client from npm, against a moodscape server.
// Usage: node subsonic_session.mjs BASE_URL USER PASSWORD API_KEY
// Prints one JSON object: what each call answered, for tests/api/test_subsonic_clients.py to check.
import { SubsonicAPI } from "subsonic-api";

const [base, username, password, apiKey] = process.argv.slice(2);
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
    const body = new Uint8Array(await response.arrayBuffer());
    return { http: response.status, contentRange: response.headers.get("content-range"), bytes: body.length };
  } finally {
    delete extraHeaders.Range;
  }
}

async function passwordSession() {
  const api = new SubsonicAPI({ url: base, auth: { username, password }, fetch: fetchWithHeaders });
  const out = {};
  out.ping = summary(await api.ping());
  out.extensions = (await api.getOpenSubsonicExtensions()).openSubsonicExtensions.map((e) => e.name);
  out.musicFolders = (await api.getMusicFolders()).musicFolders.musicFolder.length;
  const artists = (await api.getArtists()).artists.index.flatMap((index) => index.artist);
  out.artists = artists.map((artist) => artist.name);
  const tagged = artists.find((artist) => artist.name === "Ana Ñandú");
  const artist = (await api.getArtist({ id: tagged.id })).artist;
  out.artistAlbums = artist.album.map((album) => album.name);
  const album = (await api.getAlbum({ id: artist.album[0].id })).album;
  out.albumSongs = album.song.map((song) => song.title);
  const [first, second] = album.song;
  const song = (await api.getSong({ id: first.id })).song;
  out.song = { id: song.id, title: song.title, artist: song.artist, suffix: song.suffix, moodscape: song.moodscape };
  out.albumList = (await api.getAlbumList2({ type: "alphabeticalByName", size: 500 })).albumList2.album.length;
  const found = (await api.search3({ query: "minuit" })).searchResult3;
  out.search = (found.song || []).map((hit) => hit.title);
  const random = (await api.getRandomSongs({ size: 5, minArousal: 0.6 })).randomSongs.song || [];
  out.randomArousal = random.map((hit) => hit.moodscape.arousal);
  out.genres = (await api.getGenres()).genres.genre.length;
  out.similar = ((await api.getSimilarSongs2({ id: first.id, count: 5 })).similarSongs2.song || []).length;
  const sonic = await api.customJSON("getSonicSimilarTracks.view", { id: first.id, count: 5 });
  out.sonicSimilar = sonic.sonicMatch.map((match) => match.similarity);
  const path = await api.customJSON("findSonicPath.view", { startSongId: first.id, endSongId: second.id, count: 6 });
  out.sonicPath = path.sonicMatch.map((match) => match.entry.id);
  out.sonicPathEnds = [first.id, second.id];
  out.stream = await ranged(() => api.stream({ id: first.id }));
  const cover = await api.getCoverArt({ id: first.id });
  out.cover = { http: cover.status, type: cover.headers.get("content-type"), bytes: (await cover.arrayBuffer()).byteLength };
  const created = (await api.createPlaylist({ name: "JS mix", songId: [first.id, second.id] })).playlist;
  out.created = { name: created.name, songs: created.entry.map((entry) => entry.id) };
  out.playlists = (await api.getPlaylists()).playlists.playlist.map((playlist) => playlist.name);
  out.playlist = (await api.getPlaylist({ id: created.id })).playlist.entry.length;
  out.deleted = summary(await api.deletePlaylist({ id: created.id }));
  out.playlistsAfter = ((await api.getPlaylists()).playlists.playlist || []).map((playlist) => playlist.name);
  return out;
}

async function apiKeySession() {
  const api = new SubsonicAPI({ url: base, auth: { apiKey }, post: true, fetch: fetchWithHeaders });
  const song = (await api.search3({ query: "" })).searchResult3.song[0];
  return { ping: summary(await api.ping()), stream: await ranged(() => api.stream({ id: song.id })) };
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
