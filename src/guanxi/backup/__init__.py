"""Backups: ``guanxi backup create | verify | restore`` (database + record files + manifest)."""
