"""SAYMON protocol client: REST (``/node/api``) and Comet (Socket.IO) without Home Assistant.

This package imports nothing from Home Assistant, so it can be read, tested and reused on its
own, as Home Assistant core keeps protocol code in libraries. The caller owns the
``aiohttp.ClientSession``.
"""
