"""The site folder the local runtime puts last on a function's PYTHONPATH: its sitecustomize makes every Python
process of the function see Lambda's read-only filesystem (local/runtime.py, `read_only_filesystem_environment`)."""
