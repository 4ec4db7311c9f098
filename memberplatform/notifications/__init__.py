"""The in-app notification centre: every domain tells members things through ``notify``."""
