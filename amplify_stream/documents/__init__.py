"""Live documents (docs/protocol.md section 6): the state a document's owner holds."""
