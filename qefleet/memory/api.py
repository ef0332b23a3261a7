"""The memory router: agents, memory entries and ACLs, and the other tables.

Views only translate HTTP to store calls; store.py owns every rule.
"""

from datetime import UTC, datetime

from django.http import HttpResponse
from django.utils import timezone
from ninja import Router, Status
from ninja.decorators import decorate_view

from qefleet.jsonbody import body_limit

from . import store
from .errors import Invalid
from .keys import validate_key
from .models import (
    Artifact,
    ConsensusProposal,
    Event,
    GoapAction,
    GoapGoal,
    GoapPlan,
    Hint,
    OodaCycle,
    Pattern,
    SwarmSession,
    WorkflowState,
)
from .routing import ERRORS, agent_for, ok, page
from .schemas import (
    AclIn,
    AclOut,
    ActionIn,
    ActionOut,
    AgentOut,
    ArtifactIn,
    ArtifactOut,
    CheckpointIn,
    ClearOut,
    EntryIn,
    EntryOut,
    EventIn,
    EventOut,
    GoalIn,
    GoalOut,
    HeartbeatIn,
    HintIn,
    HintOut,
    OodaIn,
    OodaOut,
    OodaUpdate,
    Page,
    PatternIn,
    PatternOut,
    PlanIn,
    PlanOut,
    ProposalIn,
    ProposalOut,
    SessionIn,
    SessionOut,
    VoteIn,
    WorkflowIn,
    WorkflowOut,
    WorkflowUpdate,
)

router = Router()
LARGE_BODY = 256 * 1024


# --- agents ------------------------------------------------------------------


@router.get("/agents/{agent_id}", response=ok(AgentOut), tags=["agents"])
def get_agent(request, agent_id: str):
    return agent_for(request, agent_id).to_dict()


@router.post("/agents/{agent_id}/heartbeat", response=ok(AgentOut), tags=["agents"])
def heartbeat(request, agent_id: str, payload: HeartbeatIn | None = None):
    agent = agent_for(request, agent_id)
    agent.heartbeat(payload.status if payload else None)
    return agent.to_dict()


# --- memory entries and ACLs ---------------------------------------------------


@router.put("/memory/{partition}/{path:key}", response=ok(EntryOut, 201), tags=["memory"])
@decorate_view(body_limit(LARGE_BODY))
def put_entry(request, partition: str, key: str, payload: EntryIn):
    entry, created = store.put_entry(
        request.agent, partition, key, payload.value, payload.ttl_seconds, payload.access_level, payload.metadata
    )
    return Status(201 if created else 200, entry)


@router.get("/memory/{partition}/{path:key}", response=ok(EntryOut), tags=["memory"])
def get_entry(request, partition: str, key: str, swarm: str | None = None):
    return store.get_entry(request.agent, partition, key, swarm)


@router.delete("/memory/{partition}/{path:key}", response={204: None, **ERRORS}, tags=["memory"])
def delete_entry(request, partition: str, key: str):
    store.delete_entry(request.agent, partition, key)
    return HttpResponse(status=204)


@router.get("/memory/{partition}", response=ok(Page[EntryOut]), tags=["memory"])
def query_entries(request, partition: str, prefix: str = "", limit: int = 50, cursor: str | None = None,
                  swarm: str | None = None):
    items, next_cursor = store.query_entries(request.agent, partition, prefix, limit, cursor, swarm)
    return {"items": items, "next_cursor": next_cursor}


@router.delete("/memory/{partition}", response=ok(ClearOut), tags=["memory"])
def clear_partition(request, partition: str):
    return {"partition": partition, "deleted": store.clear_partition(request.agent, partition)}


@router.get("/acl/{partition}/{path:key}", response=ok(AclOut), tags=["memory"])
def get_acl(request, partition: str, key: str):
    return store.get_acl(request.agent, partition, key)


@router.put("/acl/{partition}/{path:key}", response=ok(AclOut), tags=["memory"])
def put_acl(request, partition: str, key: str, payload: AclIn):
    return store.set_acl(
        request.agent, partition, key, payload.grants, payload.blocks, payload.access_level, payload.owner, request
    )


# --- events and hints --------------------------------------------------------


@router.post("/events", response=ok(EventOut, 201), tags=["events"])
def post_event(request, payload: EventIn):
    event = store.post_event(request.agent, payload.type, payload.payload, payload.access_level, payload.ttl_seconds)
    return Status(201, event.to_dict())


def as_utc(moment, field):
    """A query's datetime in UTC: PostgreSQL takes offsets only up to 15:59, and
    one within the years 1-9999 only in its own offset cannot be compared at all."""
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{field} is outside the years 1-9999 in UTC.", field) from None


@router.get("/events", response=ok(Page[EventOut]), tags=["events"])
def query_events(
    request,
    type: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
):
    events = Event.objects.all()
    if type:
        events = events.filter(type=type)
    if source:
        events = events.filter(owner_id=source)
    if since:
        events = events.filter(timestamp__gte=as_utc(since, "since"))
    if until:
        events = events.filter(timestamp__lt=as_utc(until, "until"))
    return page(*store.readable_page(request.agent, events, limit, cursor, newest_first=True))


@router.post("/hints", response=ok(HintOut, 201), tags=["hints"])
@decorate_view(body_limit(LARGE_BODY))
def post_hint(request, payload: HintIn):
    validate_key(payload.key)
    hint = store.create_owned(
        request.agent, Hint, payload.access_level, payload.ttl_seconds, key=payload.key, value=payload.value
    )
    return Status(201, hint.to_dict())


@router.get("/hints", response=ok(Page[HintOut]), tags=["hints"])
def read_hints(request, prefix: str = "", limit: int = 50, cursor: str | None = None):
    hints = Hint.objects.filter(key__startswith=prefix)
    return page(*store.readable_page(request.agent, hints, limit, cursor, newest_first=True, keep=store.matches(prefix)))


# --- patterns ----------------------------------------------------------------


@router.post("/patterns", response=ok(PatternOut, 201), tags=["patterns"])
def store_pattern(request, payload: PatternIn):
    created = store.upsert_pattern(
        request.agent, payload.pattern, payload.confidence, payload.metadata, payload.ttl_seconds, payload.access_level
    )
    pattern = Pattern.objects.get(owner_id=request.agent.agent_id, pattern=payload.pattern)
    return Status(201 if created else 200, pattern.to_dict())


@router.get("/patterns/{int:pattern_id}", response=ok(PatternOut), tags=["patterns"])
def get_pattern(request, pattern_id: int):
    return store.get_readable(request.agent, Pattern, pattern_id).to_dict()


@router.get("/patterns", response=ok(Page[PatternOut]), tags=["patterns"])
def query_patterns(
    request, min_confidence: float = 0.0, owner: str | None = None, limit: int = 50, cursor: str | None = None
):
    patterns = Pattern.objects.filter(confidence__gte=min_confidence)
    if owner:
        patterns = patterns.filter(owner_id=owner)
    return page(*store.readable_page(request.agent, patterns, limit, cursor))


# --- workflows ---------------------------------------------------------------


@router.post("/workflows", response=ok(WorkflowOut, 201), tags=["workflows"])
@decorate_view(body_limit(LARGE_BODY))
def create_workflow(request, payload: WorkflowIn):
    fields = payload.model_dump(exclude={"access_level"})
    return Status(201, store.create_owned(request.agent, WorkflowState, payload.access_level, **fields).to_dict())


@router.get("/workflows/{int:workflow_id}", response=ok(WorkflowOut), tags=["workflows"])
def get_workflow(request, workflow_id: int):
    return store.get_readable(request.agent, WorkflowState, workflow_id).to_dict()


@router.patch("/workflows/{int:workflow_id}", response=ok(WorkflowOut), tags=["workflows"])
@decorate_view(body_limit(LARGE_BODY))
def update_workflow(request, workflow_id: int, payload: WorkflowUpdate):
    fields = payload.model_dump(exclude_none=True)
    return store.update_owned(request.agent, WorkflowState, workflow_id, **fields).to_dict()


@router.get("/workflows", response=ok(Page[WorkflowOut]), tags=["workflows"])
def query_workflows(request, status: str | None = None, limit: int = 50, cursor: str | None = None):
    workflows = WorkflowState.objects.filter(status=status) if status else WorkflowState.objects.all()
    return page(*store.readable_page(request.agent, workflows, limit, cursor))


# --- consensus ---------------------------------------------------------------


@router.post("/consensus", response=ok(ProposalOut, 201), tags=["consensus"])
def propose(request, payload: ProposalIn):
    proposal = store.create_owned(
        request.agent, ConsensusProposal, payload.access_level, payload.ttl_seconds,
        decision=payload.decision, quorum=payload.quorum,
    )
    return Status(201, proposal.to_dict())


@router.get("/consensus/{int:proposal_id}", response=ok(ProposalOut), tags=["consensus"])
def get_proposal(request, proposal_id: int):
    return store.get_readable(request.agent, ConsensusProposal, proposal_id).to_dict()


@router.post("/consensus/{int:proposal_id}/votes", response=ok(ProposalOut), tags=["consensus"])
def vote(request, proposal_id: int, payload: VoteIn):
    return store.vote(request.agent, proposal_id, payload.vote).to_dict()


@router.get("/consensus", response=ok(Page[ProposalOut]), tags=["consensus"])
def query_proposals(request, status: str | None = None, limit: int = 50, cursor: str | None = None):
    proposals = ConsensusProposal.objects.filter(status=status) if status else ConsensusProposal.objects.all()
    return page(*store.readable_page(request.agent, proposals, limit, cursor))


# --- artifacts and sessions --------------------------------------------------


@router.post("/artifacts", response=ok(ArtifactOut, 201), tags=["artifacts"])
def create_artifact(request, payload: ArtifactIn):
    fields = payload.model_dump(exclude={"access_level"})
    return Status(201, store.create_owned(request.agent, Artifact, payload.access_level, **fields).to_dict())


@router.get("/artifacts/{int:artifact_id}", response=ok(ArtifactOut), tags=["artifacts"])
def get_artifact(request, artifact_id: int):
    return store.get_readable(request.agent, Artifact, artifact_id).to_dict()


@router.get("/artifacts", response=ok(Page[ArtifactOut]), tags=["artifacts"])
def query_artifacts(
    request, kind: str | None = None, tag: str | None = None, limit: int = 50, cursor: str | None = None
):
    artifacts = Artifact.objects.filter(kind=kind) if kind else Artifact.objects.all()
    # Tags are a JSON list; SQLite cannot search inside one, so the tag is matched per row.
    keep = (lambda artifact: tag in artifact.tags) if tag else None
    return page(*store.readable_page(request.agent, artifacts, limit, cursor, keep=keep))


@router.post("/sessions", response=ok(SessionOut, 201), tags=["sessions"])
@decorate_view(body_limit(LARGE_BODY))
def create_session(request, payload: SessionIn):
    fields = payload.model_dump(exclude={"access_level"})
    return Status(201, store.create_owned(request.agent, SwarmSession, payload.access_level, **fields).to_dict())


@router.get("/sessions/{int:session_id}", response=ok(SessionOut), tags=["sessions"])
def get_session(request, session_id: int):
    return store.get_readable(request.agent, SwarmSession, session_id).to_dict()


@router.post("/sessions/{int:session_id}/checkpoints", response=ok(SessionOut), tags=["sessions"])
@decorate_view(body_limit(LARGE_BODY))
def add_checkpoint(request, session_id: int, payload: CheckpointIn):
    return store.add_session_checkpoint(request.agent, session_id, payload.checkpoint).to_dict()


@router.post("/sessions/{int:session_id}/resume", response=ok(SessionOut), tags=["sessions"])
def resume_session(request, session_id: int):
    return store.resume_session(request.agent, session_id).to_dict()


# --- GOAP --------------------------------------------------------------------


@router.post("/goap/goals", response=ok(GoalOut, 201), tags=["goap"])
def create_goal(request, payload: GoalIn):
    fields = payload.model_dump(exclude={"access_level"})
    return Status(201, store.create_owned(request.agent, GoapGoal, payload.access_level, **fields).to_dict())


@router.get("/goap/goals/{int:goal_id}", response=ok(GoalOut), tags=["goap"])
def get_goal(request, goal_id: int):
    return store.get_readable(request.agent, GoapGoal, goal_id).to_dict()


@router.post("/goap/actions", response=ok(ActionOut, 201), tags=["goap"])
def create_action(request, payload: ActionIn):
    fields = payload.model_dump(exclude={"access_level"})
    return Status(201, store.create_owned(request.agent, GoapAction, payload.access_level, **fields).to_dict())


@router.get("/goap/actions/{int:action_id}", response=ok(ActionOut), tags=["goap"])
def get_action(request, action_id: int):
    return store.get_readable(request.agent, GoapAction, action_id).to_dict()


@router.get("/goap/actions", response=ok(Page[ActionOut]), tags=["goap"])
def query_actions(request, agent_type: str | None = None, limit: int = 50, cursor: str | None = None):
    actions = GoapAction.objects.filter(agent_type=agent_type) if agent_type else GoapAction.objects.all()
    return page(*store.readable_page(request.agent, actions, limit, cursor))


@router.post("/goap/plans", response=ok(PlanOut, 201), tags=["goap"])
def create_plan(request, payload: PlanIn):
    return Status(201, store.create_plan(request.agent, payload.goal_id, payload.sequence, payload.access_level).to_dict())


@router.get("/goap/plans/{int:plan_id}", response=ok(PlanOut), tags=["goap"])
def get_plan(request, plan_id: int):
    return store.get_readable(request.agent, GoapPlan, plan_id).to_dict()


# --- OODA --------------------------------------------------------------------


@router.post("/ooda", response=ok(OodaOut, 201), tags=["ooda"])
@decorate_view(body_limit(LARGE_BODY))
def start_ooda(request, payload: OodaIn):
    fields = payload.model_dump(exclude={"access_level"})
    return Status(201, store.create_owned(request.agent, OodaCycle, payload.access_level, **fields).to_dict())


@router.get("/ooda/{int:cycle_id}", response=ok(OodaOut), tags=["ooda"])
def get_ooda(request, cycle_id: int):
    return store.get_readable(request.agent, OodaCycle, cycle_id).to_dict()


@router.patch("/ooda/{int:cycle_id}", response=ok(OodaOut), tags=["ooda"])
@decorate_view(body_limit(LARGE_BODY))
def update_ooda(request, cycle_id: int, payload: OodaUpdate):
    return store.update_owned(request.agent, OodaCycle, cycle_id, **payload.model_dump(exclude_unset=True)).to_dict()


@router.get("/ooda", response=ok(Page[OodaOut]), tags=["ooda"])
def query_ooda(request, phase: str | None = None, limit: int = 50, cursor: str | None = None):
    cycles = OodaCycle.objects.filter(phase=phase) if phase else OodaCycle.objects.all()
    return page(*store.readable_page(request.agent, cycles, limit, cursor))
