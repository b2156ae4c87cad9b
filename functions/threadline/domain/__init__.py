"""The business of Threadline: pure Python, no AWS, HTTP or SQL."""
