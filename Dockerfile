FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md celery_app.py ./
COPY zart ./zart
COPY flask_app ./flask_app
COPY migrations ./migrations
COPY examples ./examples
RUN pip install --no-cache-dir .
ENV PYTHONPATH=/app
CMD ["zart", "--help"]
