"""hitl adapter for openai_agents (work in progress)."""
