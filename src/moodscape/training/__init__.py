"""Training stages: backbone pretraining (3a) and the new-label classifier (3b).

``data`` holds the crop dataset and crop-averaged prediction, ``loop`` the epoch and
process plumbing both stages share; ``pretrain`` and ``classify`` each read top to
bottom: data, model, optimiser, loop, evaluation, save.
"""
