"""The nginx gateway in front of the controllers: its configuration renderer and certificate (render.py)."""
