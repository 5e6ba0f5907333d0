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


class RoutedPublishFlow(Flow[PublishState]):
    """The person's decision routes the flow: ``emit`` outcomes, approve (no text) takes the default."""

    @start()
    @human_feedback(message="Publish or revise?", emit=["publish", "revise"], default_outcome="publish")
    def draft(self) -> dict[str, Any]:
        return {"title": self.state.title}

    @listen("publish")
    def go_live(self) -> str:
        self.state.published = "published"
        return "published"

    @listen("revise")
    def send_back(self) -> str:
        self.state.published = "sent back for revision"
        return "sent back for revision"
