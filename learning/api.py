"""The learning router: recommendations, executions, feedback, status."""

from ninja import Header, Router, Status

from qefleet.memory.api import ERRORS, agent_for

from . import services, status
from .schemas import ExecutionIn, ExecutionOut, FeedbackIn, FeedbackOut, LearningOut, RecommendationIn, RecommendationOut

router = Router(tags=["learning"])


@router.post("/agents/{agent_id}/recommendations", response={200: RecommendationOut, **ERRORS})
def recommend(request, agent_id: str, payload: RecommendationIn):
    return services.recommend(agent_for(request, agent_id), payload.task)


@router.post("/agents/{agent_id}/executions", response={200: ExecutionOut, 201: ExecutionOut, **ERRORS})
def report_execution(request, agent_id: str, payload: ExecutionIn,
                     idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=128)):
    body, created = services.report_execution(
        agent_for(request, agent_id), payload, idempotency_key, payload.model_dump(mode="json")
    )
    return Status(201 if created else 200, body)


@router.post("/agents/{agent_id}/executions/{int:execution_id}/feedback", response={200: FeedbackOut, **ERRORS})
def feedback(request, agent_id: str, execution_id: int, payload: FeedbackIn):
    return services.add_feedback(agent_for(request, agent_id), execution_id, payload.rating, payload.issues)


@router.get("/agents/{agent_id}/learning", response={200: LearningOut, **ERRORS})
def learning_status(request, agent_id: str):
    return status.learning_status(agent_for(request, agent_id))
