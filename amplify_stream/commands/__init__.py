"""Client-side commands of ``amplify-stream``: submit, watch (and the AsyncAPI writer)."""
