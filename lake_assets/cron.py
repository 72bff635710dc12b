"""Validation of the cron expressions in the pipeline config."""


def checked_cron(value: str, example: str) -> str:
    """`value` if Dagster's own schedule accepts it (what it accepts is exactly what a schedule will run),
    else ValueError naming `example` as the expected shape."""
    from dagster import DagsterInvalidDefinitionError, ScheduleDefinition

    try:
        ScheduleDefinition(name="cron_check", cron_schedule=value, job_name="cron_check")
    except DagsterInvalidDefinitionError:
        raise ValueError(f"must be a 5-field cron expression such as '{example}'") from None
    return value
