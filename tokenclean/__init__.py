"""tokenclean: token-level data cleaning for supervised fine-tuning.

Core library only (data, scoring, selection, training, I/O, config); no Prefect or DVC here.
"""

__version__ = "0.1.0"
