"""triage: reverse-solicitation triage bot (MiCA Art. 61)."""
