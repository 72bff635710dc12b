"""The value patterns of PII, one definition for the Spark detection (spark/pii_detection.py) and the
Arrow scan of what goes to the warehouse (lake_assets/checks/pii_scan.py). Plain regular expressions
(Java and Python read them alike); no Spark import, so the Arrow scan does not need a JVM."""

EMAIL_REGEX = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
SSN_REGEX = r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"
# A 13-19 digit run, Luhn-checked by the caller. Digit runs glued to letters are parts of hex digests or
# tokens, not card numbers: hashed e-mails would otherwise raise false alarms (~0.4% of hex HMACs hold a
# Luhn-valid 13-19 digit run).
CARD_CANDIDATE_REGEX = r"(?<![0-9A-Za-z*])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z*])"
