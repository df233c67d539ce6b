"""Quality gates: checks as SQL assertions, the audit that gates gold (write-audit-publish), quality history."""
