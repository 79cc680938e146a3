# Access Review Bot: one process serving the Teams bot on port 3978.
#
#   docker build -t access-review-bot .
#   docker run -p 3978:3978 --env-file .env -v arb-data:/app/data access-review-bot
#   docker run --rm --env-file .env access-review-bot python app.py doctor
#
# Configuration comes only from the environment (--env-file, orchestrator secrets); .env is kept
# out of the image by .dockerignore. See docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# A fixed, unprivileged uid/gid so a mounted volume's ownership can be set to match (10001).
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin bot

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The code stays owned by root, so the bot's user can read it but not change it; only the data
# directory (SQLite, when no DATABASE_URL points at PostgreSQL) is writable.
COPY . .
RUN mkdir -p /app/data && chown bot:bot /app/data

USER bot

ENV HOST=0.0.0.0 \
    PORT=3978 \
    DATABASE_URL=sqlite:////app/data/bot.db
VOLUME ["/app/data"]
EXPOSE 3978

# python:3.11-slim has no curl: ask /healthz with the standard library (a non-2xx answer or a
# refused connection raises, which exits non-zero).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3978') + '/healthz', timeout=4)"]

CMD ["python", "app.py"]
