"""Sedna's algorithm base classes, for user algorithms registered through ``ClassFactory``.

Sedna's built-in algorithms are sedna-core plugins here (``sedna-plugin-hem``,
``sedna-plugin-fedavg``, ``sedna-plugin-mtl``); their Sedna names resolve as before.
"""
