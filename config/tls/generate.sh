#!/bin/sh
# Example certificates for config/tls.toml: a CA, a server certificate for localhost/127.0.0.1
# (used by the proxy's listener and, in the tests, by redis-server's TLS port) and a client
# certificate. FOR TRYING sluice OUT ONLY: the private keys are public in this repository.
#
#   cd config/tls && sh generate.sh
set -eu
days=36500
openssl ecparam -name prime256v1 -genkey -noout -out ca.key.tmp
openssl pkcs8 -topk8 -nocrypt -in ca.key.tmp -out ca.key && rm ca.key.tmp
openssl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=sluice example CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem
for who in server client; do
    openssl ecparam -name prime256v1 -genkey -noout -out $who.key.tmp
    openssl pkcs8 -topk8 -nocrypt -in $who.key.tmp -out $who.key && rm $who.key.tmp
    openssl req -new -key $who.key -subj "/CN=sluice example $who" -out $who.csr
    if [ $who = server ]; then usage=serverAuth; else usage=clientAuth; fi
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' $usage > $who.ext
    openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days $days \
        -extfile $who.ext -out $who.pem
    rm $who.csr $who.ext
done
rm -f ca.srl ca.key
