"""A two-step publishing flow whose draft waits for a person (imported by tests and their subprocesses)."""

from __future__ import annotations

from typing import Any

from crewai.flow import Flow, human_feedback, listen, start
from pydantic import BaseModel


class PublishState(BaseModel):
    id: str = ""
    title: str = "Hello, world"
    published: str = ""


class PublishFlow(Flow[PublishState]):
    """Drafts an article, asks for feedback (through whatever provider is configured), publishes."""

    @start()
    @human_feedback(message="Publish this draft?")
    def draft(self) -> dict[str, Any]:
        return {"title": self.state.title, "body": "A short article."}

    @listen(draft)
    def publish(self, review: Any) -> str:
        feedback = getattr(review, "feedback", "")
        self.state.published = f"published {self.state.title!r}" + (f" after feedback {feedback!r}" if feedback else "")
        return self.state.published
