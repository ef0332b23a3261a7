"""A simulated past for the 17 demo agents: FOR DEMOS AND BENCHMARKS ONLY.

`python manage.py seed_history` writes months of invented learning history
into the real tables, so the dashboard, the benchmark and the 30-day report
have a long history to show. No agent did this work. The product never shows
invented data on real pages, so run it only on a demo or benchmark database:
it refuses when learning history exists already, unless told to replace the
demo agents' history.

How the past is made (one seed makes it all; only "now" moves it in time):

* Every agent works through hourly cycle slots. Its tasks come from the
  simulated fleet's world (learning/harness/simulator.py): its team's task types, six
  buckets per type with a best strategy each. Its success rate drifts up over
  the period (towards and around the 20 % improvement target), with dips: a
  few incidents, and the degradations behind the rollbacks.
* Each task runs through the real learning definitions: epsilon-greedy choice
  with decaying epsilon, scoring.reward, engine.q_update of Q(s, a), pattern
  and failure-pattern counts, the composite score. A task's success depends
  on the agent's trend, on exploring away from the bucket's best strategy,
  and on the A/B test arm or applied strategy it ran with.
* The improvement loop runs at every slot the way learning/improvement.py
  does: mitigations for frequent failure classes of the strategies that
  cause them (activated, judged after 50 tasks), A/B tests against the
  applied strategy or else the learned policy (started by the loop when its
  off-policy estimate finds an opportunity, by an operator otherwise),
  looked at with learning/core/stats.py every slot, decided, applied, monitored
  with the safeguard's rule for 7 days, kept or reverted. Tests are given an
  intended effect (a real winner, no effect, a worse treatment, a slower
  one, a broken assignment that trips the sample ratio check); the outcome
  is whatever the statistics decide.
* State versions are captured every few days (the real job captures each slot
  and prunes; keeping one every few days is what a long history looks like
  after pruning), before applying a winner and before rollbacks. Payloads
  are real compressed states whose checksums restore exactly; the last
  version is the live state. Three agents are rolled back (one automatically
  after three degraded safeguard checks, two by an operator, one of those
  undone), which aborts or reverts their tests and quarantines what they
  shared since the version they returned to.
* Patterns are shared when they pass sharing.qualifies and imported on
  probation by the swarm; two newcomers join late in the period and their
  own tasks confirm or reject what they imported.

What is written is described in writer.py.

The package, by concern:

* constants.py: the world's shape and tunables (tests patch these there).
* records.py: the records of the simulated past and small helpers.
* past.py: AgentPast, one agent's tasks and learning; its improvement loop
  (loop.py) and its versions, safeguard and rollbacks (rollbacks.py) are
  mixins of it.
* fleet.py: the plan of the fleet, and what happens between agents and
  operators once every past is simulated.
* writer.py: writing it all, table by table.
* generate.py: generate(), has_history(), clear_history().
"""

from .constants import MAX_DAYS
from .generate import HistoryExists, generate

__all__ = ["MAX_DAYS", "HistoryExists", "generate"]
