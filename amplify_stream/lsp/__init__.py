"""The language server (``amplify-stream lsp``): live documents in the writer's own
editor. ``server`` speaks LSP to the editor, ``link`` the WebSocket to the service,
``files`` keeps each open file and its live document in step, ``positions`` converts
LSP positions exactly, ``markup`` says which files are checked and where markup is."""
