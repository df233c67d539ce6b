"""Tests of shoplake.quality: checks, the audit that gates gold, quality history, `shoplake check`."""
