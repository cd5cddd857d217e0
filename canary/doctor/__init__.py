"""`canary doctor`: is this canary installation able to do its job, and if not, what to do.

`run_checks` looks at each layer in pipeline order: config files (and every schedule's suite),
the database (reachable, schema at head, writable), the daemon's alert baseline and sinks, each
endpoint (one real one-token request through its adapter), and the daemon's health as stored
(schedules on time, orphaned slots, the notification outbox, open alerts). Each finding is a
`Check` with one line of detail and one line of fix; `exit_code` turns them into the process
exit code. Secrets are never shown: database URLs are redacted, variables named, not read out.
"""

from canary.doctor._check import Area, Check, Status, exit_code
from canary.doctor._run import run_checks

__all__ = ["Area", "Check", "Status", "exit_code", "run_checks"]
