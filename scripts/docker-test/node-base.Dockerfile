# Part of scripts/test-docker, for machines that cannot pull the official
# node image: a Node base made of the offline Debian base (debootstrap
# --variant=minbase bookworm, docker import) and this machine's own node and
# npm, laid out as the official image has them (/usr/local/bin/node,
# /usr/local/lib/node_modules/npm). The context is a folder the script fills.
# ca-certificates.crt is this machine's CA bundle: where outgoing TLS goes
# through a proxy with its own CA, npm ci in the build trusts it as this
# machine's npm does (NODE_EXTRA_CA_CERTS).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /usr/local/share/calico-docker-test/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/calico-docker-test/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
  && node --version && npm --version
CMD ["node"]
