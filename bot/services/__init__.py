"""What cogs, web handlers and the CLI call: admin and member operations over the core."""
