# One image for every process of the service; the command picks the role.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY amplify_stream amplify_stream
COPY consumers consumers
COPY producers producers
RUN pip install --no-cache-dir -c constraints.txt . && useradd --uid 10001 amplify
USER amplify
ENV AMPLIFY_HOST=0.0.0.0 AMPLIFY_DATA_DIR=/data
ENTRYPOINT ["amplify-stream"]
CMD ["gateway"]
