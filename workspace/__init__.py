"""The read side: the QA queue, reviewer actions, export and the report, over the stored calls."""
