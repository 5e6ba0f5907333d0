"""hitl adapter for crewai (work in progress)."""
