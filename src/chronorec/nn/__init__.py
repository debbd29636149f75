"""Torch building blocks shared by the sequence recommenders and the temporal models (attention,
dropout, context embeddings): no chronorec imports, so any model layer may use them."""
