"""What a Snakemake (dry) run prints, parsed: jobs per rule, and each job's wildcards and resources."""

from __future__ import annotations

import re


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table a (dry) run prints; empty when nothing to do."""
    counts: dict[str, int] = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            in_table, counts = True, {}
            continue
        if in_table:
            match = re.match(r"^(\S+)\s+(\d+)$", line.strip())
            if match and match.group(1) != "total":
                counts[match.group(1)] = int(match.group(2))
            elif line.strip().startswith("total"):
                in_table = False
    return counts


def planned_jobs_detail(output: str) -> list[dict]:
    """Each job a (dry) run prints: rule, wildcards and resources (as strings)."""
    jobs: list[dict] = []
    for line in output.splitlines():
        text = line.strip()
        header = re.match(r"^(?:local)?rule (\w+):$", text)
        if header:
            jobs.append({"rule": header.group(1), "wildcards": {}, "resources": {}})
        elif jobs and text.startswith(("wildcards:", "resources:")):
            key, _, values = text.partition(": ")
            jobs[-1][key] = dict(item.split("=", 1) for item in values.split(", "))
    return jobs


def planned_wildcards(output: str, rule: str, name: str = "batch") -> set[str]:
    """The values of one wildcard over the jobs of ``rule`` that a (dry) run lists."""
    return {
        job["wildcards"][name]
        for job in planned_jobs_detail(output)
        if job["rule"] == rule and name in job["wildcards"]
    }
