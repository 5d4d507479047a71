"""Screens: the chat itself, and modal dialogs over it (settings, verification, ...)."""
