# The action server with the CDP package: rasa-sdk 3.6.2 (Python 3.10) plus SQLAlchemy 2 and
# psycopg 3 from the same pinned requirements as the local actions venv.
FROM rasa/rasa-sdk:3.6.2

USER root
WORKDIR /app
COPY requirements/actions.txt /tmp/requirements-actions.txt
RUN pip install --no-cache-dir -r /tmp/requirements-actions.txt && rm /tmp/requirements-actions.txt
COPY cdp /app/cdp
COPY actions /app/actions
# The handoff routing table (read by the actions) and the agent console (same image).
COPY handoff /app/handoff
COPY console /app/console
USER 1001
