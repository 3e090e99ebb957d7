"""Where the passages live: one small interface (`base.py`), one module per backend.

`faiss_dir` is the default, a directory of immutable versions on one disk (`bot/store.py`); `pgvector` keeps
them in PostgreSQL, so several bot processes on several machines answer from one database.
"""
