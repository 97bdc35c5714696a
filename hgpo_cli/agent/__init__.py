"""The agent side shared by every environment: memory, prompts, action projection, step records."""
