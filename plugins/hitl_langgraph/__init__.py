"""hitl adapter for langgraph (work in progress)."""
