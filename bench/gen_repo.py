#!/usr/bin/env python3
"""Generates a GitOps repository for benchmarks: FILES files of ten objects
each (ConfigMap, Secret, Deployment, Service, headless Service, StatefulSet,
PersistentVolumeClaim, ReplicationController, HorizontalPodAutoscaler,
Ingress), all valid, in apps/appNNNN.yaml.

Usage: gen_repo.py DIR [FILES] [IMAGE_TAG]
Rerun with another IMAGE_TAG over the same DIR to make a rolling change in
every tenth file (for plan benchmarks)."""

import os
import sys

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
  labels: {{app: {app}}}
data:
  index.html: "<p>{app}</p>"
  settings.properties: |
    threads=4
    cache=true
---
apiVersion: v1
kind: Secret
metadata:
  name: {app}-db
type: Opaque
stringData:
  password: pw-{app}
  user: admin
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels: {{app: {app}, tier: web}}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: {app}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 25%, maxUnavailable: 1}}
  template:
    metadata:
      labels: {{app: {app}, tier: web}}
    spec:
      containers:
      - name: httpd
        image: busybox:{tag}
        command: [httpd, -f, -p, "8080", -h, /www]
        ports:
        - {{name: http, containerPort: 8080}}
        env:
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef: {{name: {app}-db, key: password}}
        envFrom:
        - configMapRef: {{name: {app}-config}}
        readinessProbe:
          httpGet: {{path: /, port: http}}
          periodSeconds: 5
        livenessProbe:
          tcpSocket: {{port: 8080}}
        resources:
          requests: {{cpu: 100m, memory: 32Mi}}
          limits: {{cpu: "1", memory: 64Mi}}
        volumeMounts:
        - {{name: www, mountPath: /www}}
      volumes:
      - name: www
        configMap: {{name: {app}-config}}
---
apiVersion: v1
kind: Service
metadata:
  name: {app}
spec:
  selector: {{app: {app}}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
---
apiVersion: v1
kind: Service
metadata:
  name: {app}-db
spec:
  clusterIP: None
  selector: {{app: {app}-db}}
  ports:
  - {{name: db, port: 5432}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {app}-db
spec:
  serviceName: {app}-db
  replicas: 2
  selector:
    matchLabels: {{app: {app}-db}}
  template:
    metadata:
      labels: {{app: {app}-db}}
    spec:
      containers:
      - name: db
        image: busybox:1.35
        command: [sh, -c, "sleep 3600"]
        ports:
        - {{name: db, containerPort: 5432}}
        volumeMounts:
        - {{name: data, mountPath: /data}}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {{storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {app}-cache
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {{storage: 512Mi}}
---
apiVersion: v1
kind: ReplicationController
metadata:
  name: {app}-worker
spec:
  replicas: 1
  selector: {{app: {app}-worker}}
  template:
    metadata:
      labels: {{app: {app}-worker}}
    spec:
      containers:
      - name: worker
        image: busybox:1.35
        command: [sh, -c, "while true; do sleep 5; done"]
        volumeMounts:
        - {{name: cache, mountPath: /cache}}
      volumes:
      - name: cache
        persistentVolumeClaim: {{claimName: {app}-cache}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {app}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {app}}}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {{type: Utilization, averageUtilization: 70}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {app}
spec:
  ingressClassName: driftless
  rules:
  - host: {app}.example.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: {app}
            port: {{name: http}}
"""


def main():
    out = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    tag = sys.argv[3] if len(sys.argv) > 3 else None
    os.makedirs(os.path.join(out, "apps"), exist_ok=True)
    for i in range(files):
        app = f"app{i:04d}"
        # A changed tag touches every tenth file: a 10% rolling change.
        file_tag = tag if tag and i % 10 == 0 else "1.35"
        with open(os.path.join(out, "apps", f"{app}.yaml"), "w") as f:
            f.write(TEMPLATE.format(app=app, tag=file_tag))


if __name__ == "__main__":
    main()
