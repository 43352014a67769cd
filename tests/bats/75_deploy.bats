#!/usr/bin/env bats
# deploy/kubernetes: every object is valid against the Kubernetes API's
# schemas, with no unknown field (tests/tools/k8s-validate.mjs, npm's
# kubernetes-models, installed outside the checkout by k8s-tools.sh), every
# container runs hardened, and pgprelude accepts the ConfigMap's pgprelude.ini.
# Needs node and npm (and the npm registry the first time); no cluster.

load test_helper/common

DEPLOY=$REPO/deploy/kubernetes

setup_file() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "75_deploy.bats: node and npm are needed (tests/tools/deps.sh)" >&2
        return 1
    fi
    local dir
    dir=$("$REPO/tests/tools/k8s-tools.sh") || return 1
    export K8S_MODULES=$dir/node_modules
}

# validate [ARGS...] FILE...: the validator, on the installed packages.
validate() {
    node "$REPO/tests/tools/k8s-validate.mjs" --modules "$K8S_MODULES" "$@"
}

# broken SED-SCRIPT [FILE]: a copy of deploy/kubernetes/FILE (deployment.yaml)
# with SED-SCRIPT applied; prints its path. The edit must change something.
broken() {
    local out
    out=$(workdir)/broken-${2:-deployment.yaml}
    sed "$1" "$DEPLOY/${2:-deployment.yaml}" >"$out"
    ! cmp -s "$out" "$DEPLOY/${2:-deployment.yaml}" || { echo "broken: '$1' changed nothing" >&2; return 1; }
    echo "$out"
}

@test "deploy/kubernetes holds its five manifests" {
    for f in deployment.yaml deployment-initcontainer.yaml job.yaml secret.yaml configmap.yaml; do
        assert_file_exists "$DEPLOY/$f"
    done
}

@test "every object in deploy/kubernetes is valid, with every container hardened" {
    run validate --hardened "$DEPLOY"/*.yaml
    assert_success
    refute_output --partial "not ok"
    assert_line --regexp '^ok [0-9]+ - .*/deployment\.yaml:[0-9]+ apps/v1/Deployment directus$'
    assert_line --regexp '^ok [0-9]+ - .*/deployment-initcontainer\.yaml:[0-9]+ apps/v1/Deployment directus$'
    assert_line --regexp '^ok [0-9]+ - .*/job\.yaml:[0-9]+ batch/v1/Job directus-migrate$'
    assert_line --regexp '^ok [0-9]+ - .*/secret\.yaml:[0-9]+ v1/Secret directus-db$'
    assert_line --regexp '^ok [0-9]+ - .*/configmap\.yaml:[0-9]+ v1/ConfigMap pgprelude-config$'
}

@test "a wrong type fails validation: replicas as a string" {
    run validate "$(broken 's/^  replicas: 2$/  replicas: two/')"
    assert_failure 1
    assert_line --regexp '^not ok 1 - '
    assert_line --partial '/spec/replicas: must be integer'
}

@test "a misspelled field fails validation, with the right name suggested" {
    run validate "$(broken 's/readOnlyRootFilesystem:/readOnlyRootFilesytem:/')"
    assert_failure 1
    assert_line --partial '/spec/template/spec/containers/0/securityContext/readOnlyRootFilesytem: unknown field "readOnlyRootFilesytem" (did you mean "readOnlyRootFilesystem"?)'

    run validate "$(broken 's/activeDeadlineSeconds:/activeDeadline:/' job.yaml)"
    assert_failure 1
    assert_line --partial '/spec/activeDeadline: unknown field'
}

@test "a bad quantity and a missing required field fail validation" {
    run validate "$(broken 's/cpu: 250m/cpu: lots/')"
    assert_failure 1
    assert_line --partial 'resources/requests/cpu: must match format "quantity"'

    run validate "$(broken '/^  selector:$/,/^      app.kubernetes.io\/name: directus$/d')"
    assert_failure 1
    assert_line --partial '/spec: must have required property selector'
}

@test "an unknown kind or apiVersion fails validation" {
    run validate "$(broken 's/^kind: Deployment$/kind: Deploymnet/')"
    assert_failure 1
    assert_line --partial 'unknown kind Deploymnet in apps/v1'

    # A file of the package that is not an API object.
    run validate "$(broken 's/^kind: Deployment$/kind: DeploymentSpec/')"
    assert_failure 1
    assert_line --partial 'not an API object'

    run validate "$(broken 's|^apiVersion: apps/v1$|apiVersion: example.com/v1|')"
    assert_failure 1
    assert_line --partial 'unknown kind Deployment in example.com/v1'
}

@test "one bad document among good ones fails the file, the others still pass" {
    local f
    f=$(workdir)/two.yaml
    { cat "$DEPLOY/secret.yaml"; echo "---"; sed 's/^  replicas: 2$/  replicas: "2"/' "$DEPLOY/deployment.yaml"; } >"$f"
    run validate "$f"
    assert_failure 1
    assert_line --regexp '^ok 1 - .* v1/Secret directus-db$'
    assert_line --regexp '^not ok 2 - .* apps/v1/Deployment directus$'
}

@test "broken YAML and a file with no object fail validation" {
    local d
    d=$(workdir)
    printf 'apiVersion: v1\nkind: [ConfigMap\n' >"$d/bad.yaml"
    run validate "$d/bad.yaml"
    assert_failure 1
    assert_line --regexp "^# .*bad\.yaml:[0-9]+: YAML: "

    printf '# nothing\n' >"$d/empty.yaml"
    run validate "$d/empty.yaml"
    assert_failure 1
    assert_line --partial 'no Kubernetes object in it'
}

@test "--hardened: a container that may run as root or keeps capabilities fails" {
    run validate --hardened "$(broken 's/runAsNonRoot: true/runAsNonRoot: false/g' job.yaml)"
    assert_failure 1
    assert_line --partial 'containers migrate: runAsNonRoot is not true'

    # The initContainer too.
    run validate --hardened "$(broken '0,/drop: \["ALL"\]/s//drop: ["NET_RAW"]/' deployment-initcontainer.yaml)"
    assert_failure 1
    assert_line --partial 'initContainers migrate: capabilities.drop lacks ALL'

    run validate --hardened "$(broken 's/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/')"
    assert_failure 1
    assert_line --partial 'containers directus: allowPrivilegeEscalation is not false'

    run validate --hardened "$(broken 's|name: PGPASSWORD_FILE|name: PGPASSWORD|')"
    assert_failure 1
    assert_line --partial 'containers directus: env PGPASSWORD has a literal value (use a Secret)'
}

@test "every container's securityContext, read from the YAML: non-root, ALL capabilities dropped" {
    # Independently of k8s-validate.mjs: list each container with its
    # effective runAsNonRoot and its dropped capabilities.
    run node --input-type=module -e '
        import { createRequire } from "node:module";
        import { readFileSync } from "node:fs";
        const YAML = createRequire(process.env.K8S_MODULES + "/x.js")("yaml");
        for (const f of process.argv.slice(1)) {
            for (const doc of YAML.parseAllDocuments(readFileSync(f, "utf8"))) {
                const o = doc.toJS();
                const pod = o?.spec?.template?.spec;
                if (!pod) continue;
                for (const g of ["initContainers", "containers"]) {
                    for (const c of pod[g] ?? []) {
                        const sc = c.securityContext ?? {};
                        const nonRoot = sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot ?? false;
                        const uid = sc.runAsUser ?? pod.securityContext?.runAsUser;
                        console.log([f.split("/").pop(), g, c.name, "nonRoot=" + nonRoot, "uid=" + uid,
                            "drop=" + (sc.capabilities?.drop ?? []).join(","),
                            "readOnlyRoot=" + sc.readOnlyRootFilesystem,
                            "seccomp=" + (sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type)].join(" "));
                    }
                }
            }
        }' "$DEPLOY"/*.yaml
    assert_success
    # deployment: 1 container; initcontainer variant: 2; job: 1.
    assert_equal "${#lines[@]}" 4
    local line
    for line in "${lines[@]}"; do
        [[ "$line" == *" nonRoot=true uid=10001 drop=ALL readOnlyRoot=true seccomp=RuntimeDefault" ]] ||
            fail "not hardened: $line"
    done
}

@test "pgprelude accepts the ConfigMap's pgprelude.ini" {
    local d
    d=$(workdir cm)
    node --input-type=module -e '
        import { createRequire } from "node:module";
        import { readFileSync } from "node:fs";
        const YAML = createRequire(process.env.K8S_MODULES + "/x.js")("yaml");
        process.stdout.write(YAML.parse(readFileSync(process.argv[1], "utf8")).data["pgprelude.ini"]);
    ' "$DEPLOY/configmap.yaml" >"$d/pgprelude.ini"
    assert_file_not_empty "$d/pgprelude.ini"
    # `wait` reads the whole configuration (a bad key or value: exit 2), then
    # only waits for the database: the suite's, through DATABASE_URL.
    run "$PGPRELUDE" -c "$d/pgprelude.ini" wait
    assert_success
}
