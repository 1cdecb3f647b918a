"""callqa serve: the QA workspace as a web application (see app.py)."""
