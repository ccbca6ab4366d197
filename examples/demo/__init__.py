"""The sedna-core demo: every job on embedded defaults, on 127.0.0.1 only."""
