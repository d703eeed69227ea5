"""Deployment: the local stack that runs Kafka and Elasticsearch without Docker, index
templates and the Dockerfile behind docker-compose.yml."""
