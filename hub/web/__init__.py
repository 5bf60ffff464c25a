"""HTTP layer: handlers translate requests into hub calls; no business rules here."""
