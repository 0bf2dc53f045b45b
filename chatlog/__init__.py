"""chatlog: operator CLI and the chat-backend client."""
