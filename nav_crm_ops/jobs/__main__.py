"""``python -m nav_crm_ops.jobs ...``: the job queue CLI without the main command."""

from .cli import jobs

jobs(prog_name="python -m nav_crm_ops.jobs")
