"""The server-side command `pywhisk`: standalone platform (and, later, admin and the distributed processes)."""
