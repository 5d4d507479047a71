"""The Textual chat app. Talks to the node only through its async API and events."""
