"""Widgets of the chat screen: sidebar, header, message list and items, composer."""
