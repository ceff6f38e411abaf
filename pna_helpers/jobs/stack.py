"""The AWS "stack": every resource PNA's Batch jobs need, created or updated idempotently.

``Stack(settings).up()`` makes sure these exist (names from :class:`~pna_helpers.config.Settings`)
and returns what it did per resource (``created`` / ``updated`` / ``unchanged``):

* S3 bucket ``results_bucket`` (inputs, manifests, results);
* ECR repository ``pna-engine`` (the job image; push it with the commands in the README);
* IAM roles: ``pna-batch-service-role`` (AWS Batch), ``pna-batch-instance-role`` + instance
  profile (EC2 hosts), ``pna-batch-execution-role`` (pull image, write logs),
  ``pna-batch-job-role`` (the container: read inputs, write results in the bucket);
* EC2 launch template ``pna-batch-scratch`` (root volume ``volume_gib`` GiB for large places);
* the managed compute environment (EC2 on-demand, SPOT, FARGATE or FARGATE_SPOT; min / desired /
  max vCPUs; instance types with local NVMe scratch), in the default VPC's subnets and default
  security group unless ``subnets`` / ``security_groups`` are given;
* the job queue;
* the job definition, registered only when its content changed (content hash in the
  ``pna_content_hash`` parameter and tag, as Metaflow does).

``scale(min, desired, max)`` resizes the compute environment before a big run; ``down()`` scales
it back to zero (``down(delete=True)`` removes queue, compute environment and job definitions).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from pna_engine import __version__
from pna_engine.errors import InputError
from pna_helpers.config import Settings
from pna_helpers.jobs.aws import Aws

SERVICE_ROLE = "pna-batch-service-role"
INSTANCE_ROLE = "pna-batch-instance-role"
INSTANCE_PROFILE = "pna-batch-instance-profile"
EXECUTION_ROLE = "pna-batch-execution-role"
JOB_ROLE = "pna-batch-job-role"
LAUNCH_TEMPLATE = "pna-batch-scratch"
ECR_REPOSITORY = "pna-engine"

_POLICY = "arn:aws:iam::aws:policy/"
ROLES: dict[str, tuple[str, list[str]]] = {
    SERVICE_ROLE: ("batch.amazonaws.com", [_POLICY + "service-role/AWSBatchServiceRole"]),
    INSTANCE_ROLE: ("ec2.amazonaws.com",
                    [_POLICY + "service-role/AmazonEC2ContainerServiceforEC2Role"]),
    EXECUTION_ROLE: ("ecs-tasks.amazonaws.com",
                     [_POLICY + "service-role/AmazonECSTaskExecutionRolePolicy"]),
    JOB_ROLE: ("ecs-tasks.amazonaws.com", []),
}


def _trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def job_role_policy(bucket: str) -> dict[str, Any]:
    """What the container may do: read any input object, write under the results bucket.

    Parameters
    ----------
    bucket : str
        The results bucket.

    Returns
    -------
    dict
        An IAM policy document (the job role's inline policy ``pna-results``).
    """
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
    ]}


class Stack:
    """The AWS resources of PNA (see the module docstring)."""

    def __init__(self, settings: Settings | None = None, sleep=time.sleep):
        self.settings = settings or Settings.load(backend="aws")
        self.aws = Aws(self.settings, sleep=sleep)
        self._sleep = sleep

    # ------------------------------------------------------------------ helpers
    def _call(self, service: str, op: str, **kw: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.aws.call(service, op, **kw)
        except (ClientError, BotoCoreError) as exc:
            raise self.aws.error(exc, f"stack: {service} {op}") from exc

    def _code(self, exc: Exception) -> str:
        return ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code", "")

    @property
    def fargate(self) -> bool:
        """Whether the compute type is ``FARGATE`` or ``FARGATE_SPOT``.

        Returns
        -------
        bool
            True for Fargate: no instance role, profile or launch template then.
        """
        return self.settings.compute_type.startswith("FARGATE")

    @property
    def image(self) -> str:
        """The job image: settings, else this account's ECR repository.

        Returns
        -------
        str
            ``settings.image``, else
            ``<account>.dkr.ecr.<region>.amazonaws.com/pna-engine:<pna_engine version>``.

        Raises
        ------
        InputError
            No image is set and the account cannot be found.
        """
        return self.settings.image or (f"{self.aws.account}.dkr.ecr.{self.settings.aws_region}."
                                       f"amazonaws.com/{ECR_REPOSITORY}:{__version__}")

    # ------------------------------------------------------------------ pieces
    def ensure_bucket(self) -> str:
        """Create the results bucket if it does not exist.

        Returns
        -------
        str
            ``"created"`` or ``"unchanged"``.

        Raises
        ------
        InputError
            An AWS call failed (credentials, permissions, network).
        """
        from botocore.exceptions import ClientError

        bucket = self.aws.bucket
        try:
            self.aws.call("s3", "head_bucket", Bucket=bucket)
            return "unchanged"
        except ClientError as exc:
            if self._code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self.aws.error(exc, f"stack: bucket {bucket}") from exc
        kw: dict[str, Any] = {"Bucket": bucket}
        if self.settings.aws_region != "us-east-1":
            kw["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.aws_region}
        self._call("s3", "create_bucket", **kw)
        return "created"

    def ensure_repository(self) -> str:
        """Create the ECR repository ``pna-engine`` (scan on push) if it does not exist.

        Returns
        -------
        str
            ``"created"`` or ``"unchanged"``.

        Raises
        ------
        InputError
            An AWS call failed (credentials, permissions, network).
        """
        from botocore.exceptions import ClientError

        try:
            self.aws.call("ecr", "describe_repositories", repositoryNames=[ECR_REPOSITORY])
            return "unchanged"
        except ClientError as exc:
            if self._code(exc) != "RepositoryNotFoundException":
                raise self.aws.error(exc, "stack: ECR repository") from exc
        self._call("ecr", "create_repository", repositoryName=ECR_REPOSITORY,
                   imageScanningConfiguration={"scanOnPush": True})
        return "created"

    def ensure_role(self, name: str) -> tuple[str, str]:
        """(arn, action) of one role with its trust and policies.

        Creates the role if missing and attaches its managed policies; the job role also gets
        (or has updated) the inline policy :func:`job_role_policy`. An existing role's trust
        policy is not changed.

        Parameters
        ----------
        name : str
            One of :data:`ROLES` (e.g. :data:`JOB_ROLE`).

        Returns
        -------
        tuple of (str, str)
            The role's ARN and ``"created"``, ``"updated"`` or ``"unchanged"``.

        Raises
        ------
        InputError
            An AWS call failed (credentials, permissions, network).
        """
        from botocore.exceptions import ClientError

        service, policies = ROLES[name]
        action = "unchanged"
        try:
            arn = self.aws.call("iam", "get_role", RoleName=name)["Role"]["Arn"]
        except ClientError as exc:
            if self._code(exc) != "NoSuchEntity":
                raise self.aws.error(exc, f"stack: IAM role {name}") from exc
            arn = self._call("iam", "create_role", RoleName=name,
                             AssumeRolePolicyDocument=_trust(service),
                             Description="PNA (Bicycle Network Analysis) batch jobs",
                             Tags=[{"Key": "pna", "Value": "stack"}])["Role"]["Arn"]
            action = "created"
        attached = {p["PolicyArn"] for p in self._call(
            "iam", "list_attached_role_policies", RoleName=name)["AttachedPolicies"]}
        for p in policies:
            if p not in attached:
                self._call("iam", "attach_role_policy", RoleName=name, PolicyArn=p)
                action = action if action == "created" else "updated"
        if name == JOB_ROLE:
            doc = job_role_policy(self.aws.bucket)
            try:
                cur = self.aws.call("iam", "get_role_policy", RoleName=name,
                                    PolicyName="pna-results")["PolicyDocument"]
                cur = json.loads(cur) if isinstance(cur, str) else cur
            except ClientError:
                cur = None
            if cur != doc:
                self._call("iam", "put_role_policy", RoleName=name, PolicyName="pna-results",
                           PolicyDocument=json.dumps(doc))
                action = action if action == "created" else "updated"
        return arn, action

    def ensure_instance_profile(self) -> tuple[str, str]:
        """Create the EC2 instance profile if missing and add the instance role to it.

        Returns
        -------
        tuple of (str, str)
            The profile's ARN and ``"created"``, ``"updated"`` or ``"unchanged"``.

        Raises
        ------
        InputError
            An AWS call failed (credentials, permissions, network).
        """
        from botocore.exceptions import ClientError

        action = "unchanged"
        try:
            prof = self.aws.call("iam", "get_instance_profile",
                                 InstanceProfileName=INSTANCE_PROFILE)["InstanceProfile"]
        except ClientError as exc:
            if self._code(exc) != "NoSuchEntity":
                raise self.aws.error(exc, "stack: instance profile") from exc
            prof = self._call("iam", "create_instance_profile",
                              InstanceProfileName=INSTANCE_PROFILE)["InstanceProfile"]
            action = "created"
        if not any(r["RoleName"] == INSTANCE_ROLE for r in prof.get("Roles", [])):
            self._call("iam", "add_role_to_instance_profile", InstanceProfileName=INSTANCE_PROFILE,
                       RoleName=INSTANCE_ROLE)
            action = action if action == "created" else "updated"
        return prof["Arn"], action

    def network(self) -> tuple[list[str], list[str]]:
        """Subnets and security groups: the settings', else the default VPC's.

        Each list not set in the settings is taken from the default VPC: all its subnets, and
        its ``default`` security group.

        Returns
        -------
        tuple of (list of str, list of str)
            Subnet ids and security group ids.

        Raises
        ------
        InputError
            No default VPC, or it has no subnets / default group (set ``PNA_SUBNETS`` and
            ``PNA_SECURITY_GROUPS``), or an AWS call failed.
        """
        subnets, groups = list(self.settings.subnets), list(self.settings.security_groups)
        if subnets and groups:
            return subnets, groups
        vpcs = self._call("ec2", "describe_vpcs",
                          Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise InputError(f"no default VPC in {self.settings.aws_region}: set PNA_SUBNETS and "
                             "PNA_SECURITY_GROUPS (comma-separated ids)")
        vpc = vpcs[0]["VpcId"]
        if not subnets:
            subnets = sorted(s["SubnetId"] for s in self._call(
                "ec2", "describe_subnets", Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"])
        if not groups:
            groups = [g["GroupId"] for g in self._call(
                "ec2", "describe_security_groups",
                Filters=[{"Name": "vpc-id", "Values": [vpc]},
                         {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]]
        if not subnets or not groups:
            raise InputError(f"the default VPC {vpc} has no subnets or default security group: "
                             "set PNA_SUBNETS and PNA_SECURITY_GROUPS")
        return subnets, groups

    def ensure_launch_template(self) -> str:
        """Create the launch template (gp3 root volume of ``volume_gib`` GiB) if missing.

        An existing template is kept as it is.

        Returns
        -------
        str
            ``"created"`` or ``"unchanged"``.

        Raises
        ------
        InputError
            An AWS call failed (credentials, permissions, network).
        """
        from botocore.exceptions import ClientError

        try:
            self.aws.call("ec2", "describe_launch_templates", LaunchTemplateNames=[LAUNCH_TEMPLATE])
            return "unchanged"
        except ClientError as exc:
            if "NotFound" not in self._code(exc) and "NotFound" not in str(exc):
                raise self.aws.error(exc, "stack: launch template") from exc
        self._call("ec2", "create_launch_template", LaunchTemplateName=LAUNCH_TEMPLATE,
                   LaunchTemplateData={"BlockDeviceMappings": [{
                       "DeviceName": "/dev/xvda",
                       "Ebs": {"VolumeSize": self.settings.volume_gib, "VolumeType": "gp3",
                               "DeleteOnTermination": True}}]})
        return "created"

    def _describe_ce(self) -> dict[str, Any] | None:
        ces = self._call("batch", "describe_compute_environments",
                         computeEnvironments=[self.settings.compute_environment])
        return ces["computeEnvironments"][0] if ces["computeEnvironments"] else None

    def _describe_queue(self) -> dict[str, Any] | None:
        qs = self._call("batch", "describe_job_queues", jobQueues=[self.settings.job_queue])
        return qs["jobQueues"][0] if qs["jobQueues"] else None

    def ensure_compute_environment(self, service_role: str, instance_profile: str | None) -> str:
        """Create the managed compute environment, or enable it and update its vCPU limits.

        An existing environment gets only ``min_vcpus`` / ``max_vcpus`` (Fargate: ``max_vcpus``)
        from the settings and ``ENABLED``; a new one is waited for until VALID (up to 5 min).

        Parameters
        ----------
        service_role : str
            ARN of the AWS Batch service role.
        instance_profile : str or None
            ARN of the EC2 instance profile; None for Fargate.

        Returns
        -------
        str
            ``"created"``, ``"updated"`` or ``"unchanged"``.

        Raises
        ------
        InputError
            The new environment is INVALID, no network could be found (see :meth:`network`),
            or an AWS call failed.
        """
        s = self.settings
        ce = self._describe_ce()
        if ce is not None:
            cr = ce.get("computeResources", {})
            want = {"minvCpus": s.min_vcpus, "maxvCpus": s.max_vcpus}
            if self.fargate:
                want = {"maxvCpus": s.max_vcpus}
            changed = {k: v for k, v in want.items() if cr.get(k) != v}
            if changed or ce.get("state") != "ENABLED":
                self._call("batch", "update_compute_environment",
                           computeEnvironment=s.compute_environment, state="ENABLED",
                           computeResources=changed or want)
                return "updated"
            return "unchanged"
        subnets, groups = self.network()
        cr: dict[str, Any] = {"type": s.compute_type, "maxvCpus": s.max_vcpus,
                              "subnets": subnets, "securityGroupIds": groups,
                              "tags": {"pna": "stack"}}
        if self.fargate:
            cr.pop("tags")
        else:
            cr.update(minvCpus=s.min_vcpus, desiredvCpus=s.desired_vcpus,
                      instanceTypes=list(s.instance_types), instanceRole=instance_profile,
                      launchTemplate={"launchTemplateName": LAUNCH_TEMPLATE},
                      allocationStrategy="SPOT_CAPACITY_OPTIMIZED" if s.compute_type == "SPOT"
                      else "BEST_FIT_PROGRESSIVE")
        self._call("batch", "create_compute_environment",
                   computeEnvironmentName=s.compute_environment, type="MANAGED", state="ENABLED",
                   computeResources=cr, serviceRole=service_role, tags={"pna": "stack"})
        self._wait_valid("compute environment", self._describe_ce)
        return "created"

    def _wait_valid(self, what: str, describe, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            d = describe() or {}
            if d.get("status") in ("VALID", None) or time.monotonic() > deadline:
                if d.get("status") == "INVALID":
                    raise InputError(f"stack: {what} is INVALID: {d.get('statusReason')}")
                return
            if d.get("status") == "INVALID":
                raise InputError(f"stack: {what} is INVALID: {d.get('statusReason')}")
            self._sleep(3)

    def ensure_queue(self) -> str:
        """Create the job queue, or enable it and point it at the compute environment.

        Returns
        -------
        str
            ``"created"``, ``"updated"`` or ``"unchanged"``.

        Raises
        ------
        InputError
            The new queue is INVALID, or an AWS call failed.
        """
        s = self.settings
        q = self._describe_queue()
        order = [{"order": 1, "computeEnvironment": s.compute_environment}]
        if q is not None:
            names = [o["computeEnvironment"].rsplit("/", 1)[-1]
                     for o in q.get("computeEnvironmentOrder", [])]
            if q.get("state") != "ENABLED" or names != [s.compute_environment]:
                self._call("batch", "update_job_queue", jobQueue=s.job_queue, state="ENABLED",
                           computeEnvironmentOrder=order)
                return "updated"
            return "unchanged"
        self._call("batch", "create_job_queue", jobQueueName=s.job_queue, state="ENABLED",
                   priority=1, computeEnvironmentOrder=order, tags={"pna": "stack"})
        self._wait_valid("job queue", self._describe_queue)
        return "created"

    def job_definition_spec(self, job_role: str, execution_role: str) -> dict[str, Any]:
        """The ``register_job_definition`` arguments (without the content hash).

        On Fargate the memory is rounded down to whole GiB and clamped to 2-8 GiB per vCPU,
        and the ephemeral storage is ``volume_gib`` clamped to 21-200 GiB.

        Parameters
        ----------
        job_role : str
            ARN of the job role (the container's permissions).
        execution_role : str
            ARN of the execution role (pull the image, write logs).

        Returns
        -------
        dict
            Keyword arguments for ``batch.register_job_definition``.

        Raises
        ------
        InputError
            No image is set and the account cannot be found.
        """
        s = self.settings
        memory = s.job_memory_mib
        if self.fargate:  # Fargate takes 2-8 GiB per vCPU, in 1 GiB steps
            memory = min(max(memory // 1024 * 1024, 2048 * s.job_vcpus), 8192 * s.job_vcpus)
        props: dict[str, Any] = {
            "image": self.image,
            "command": ["run-job"],
            "jobRoleArn": job_role,
            "executionRoleArn": execution_role,
            "resourceRequirements": [
                {"type": "VCPU", "value": str(s.job_vcpus)},
                {"type": "MEMORY", "value": str(memory)}],
            "environment": [{"name": "PNA_SCRATCH", "value": "/tmp"}],
            "logConfiguration": {"logDriver": "awslogs"},
        }
        if self.fargate:
            props["networkConfiguration"] = {"assignPublicIp": "ENABLED"}
            props["fargatePlatformConfiguration"] = {"platformVersion": "LATEST"}
            props["ephemeralStorage"] = {"sizeInGiB": min(200, max(21, s.volume_gib))}
        return {
            "jobDefinitionName": s.job_definition, "type": "container",
            "containerProperties": props,
            "platformCapabilities": ["FARGATE" if self.fargate else "EC2"],
            "retryStrategy": {"attempts": max(1, s.retry_attempts)},
            "timeout": {"attemptDurationSeconds": max(60, s.job_timeout_s)},
        }

    def ensure_job_definition(self, job_role: str, execution_role: str) -> tuple[str, str]:
        """(arn, action): a new revision only when the content hash changed.

        Parameters
        ----------
        job_role : str
            ARN of the job role.
        execution_role : str
            ARN of the execution role.

        Returns
        -------
        tuple of (str, str)
            The ARN of the matching (or new) revision and ``"created"`` (no active revision
            before), ``"updated"`` or ``"unchanged"``.

        Raises
        ------
        InputError
            An AWS call failed (credentials, permissions, network).
        """
        spec = self.job_definition_spec(job_role, execution_role)
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        current = self._call("batch", "describe_job_definitions",
                             jobDefinitionName=self.settings.job_definition,
                             status="ACTIVE")["jobDefinitions"]
        for d in current:
            if (d.get("parameters") or {}).get("pna_content_hash") == digest \
                    or (d.get("tags") or {}).get("pna:content-hash") == digest:
                return d["jobDefinitionArn"], "unchanged"
        resp = self._call("batch", "register_job_definition", **spec,
                          parameters={"pna_content_hash": digest},
                          tags={"pna:content-hash": digest, "pna": "stack"})
        return resp["jobDefinitionArn"], "created" if not current else "updated"

    # ------------------------------------------------------------------ API
    def up(self) -> dict[str, str]:
        """Create or update every resource; return ``{resource: created|updated|unchanged}``.

        On Fargate the instance role, instance profile and launch template are skipped.

        Returns
        -------
        dict
            Resource (e.g. ``s3://BUCKET``, ``iam-role:pna-batch-job-role``,
            ``job-queue:<name>``) -> ``created``, ``updated`` or ``unchanged``.

        Raises
        ------
        InputError
            A resource could not be made (the message names it), or an AWS call failed.
        """
        done: dict[str, str] = {}
        done[f"s3://{self.aws.bucket}"] = self.ensure_bucket()
        done[f"ecr:{ECR_REPOSITORY}"] = self.ensure_repository()
        arns = {}
        for name in ROLES:
            if name == INSTANCE_ROLE and self.fargate:
                continue
            arns[name], done[f"iam-role:{name}"] = self.ensure_role(name)
        profile = None
        if not self.fargate:
            profile, done[f"instance-profile:{INSTANCE_PROFILE}"] = self.ensure_instance_profile()
            done[f"launch-template:{LAUNCH_TEMPLATE}"] = self.ensure_launch_template()
        done[f"compute-environment:{self.settings.compute_environment}"] = \
            self.ensure_compute_environment(arns[SERVICE_ROLE], profile)
        done[f"job-queue:{self.settings.job_queue}"] = self.ensure_queue()
        _, done[f"job-definition:{self.settings.job_definition}"] = self.ensure_job_definition(
            arns[JOB_ROLE], arns[EXECUTION_ROLE])
        return done

    def status(self) -> dict[str, Any]:
        """State of the compute environment, queue, job definition and bucket.

        Returns
        -------
        dict
            ``region``, ``bucket``, and ``compute_environment`` (name, state, status, type,
            vCPUs, instance types), ``job_queue`` (name, state, status) and ``job_definition``
            (latest active revision: name, revision, image, content hash), each None when
            missing.

        Raises
        ------
        InputError
            An AWS call failed (credentials, permissions, network).
        """
        ce = self._describe_ce()
        q = self._describe_queue()
        defs = self._call("batch", "describe_job_definitions",
                          jobDefinitionName=self.settings.job_definition,
                          status="ACTIVE")["jobDefinitions"]
        latest = max(defs, key=lambda d: d.get("revision", 0)) if defs else None
        cr = (ce or {}).get("computeResources", {})
        return {
            "region": self.settings.aws_region,
            "bucket": self.aws.bucket,
            "compute_environment": None if ce is None else {
                "name": ce["computeEnvironmentName"], "state": ce.get("state"),
                "status": ce.get("status"), "type": cr.get("type"),
                "min_vcpus": cr.get("minvCpus"), "desired_vcpus": cr.get("desiredvCpus"),
                "max_vcpus": cr.get("maxvCpus"), "instance_types": cr.get("instanceTypes")},
            "job_queue": None if q is None else {
                "name": q["jobQueueName"], "state": q.get("state"), "status": q.get("status")},
            "job_definition": None if latest is None else {
                "name": latest["jobDefinitionName"], "revision": latest.get("revision"),
                "image": (latest.get("containerProperties") or {}).get("image"),
                "content_hash": (latest.get("parameters") or {}).get("pna_content_hash")},
        }

    def scale(self, min_vcpus: int | None = None, desired_vcpus: int | None = None,
              max_vcpus: int | None = None) -> dict[str, Any]:
        """Resize the compute environment (e.g. before the yearly re-run of every place).

        On Fargate only ``max_vcpus`` is applied.

        Parameters
        ----------
        min_vcpus : int or None, optional
            New minimum; None keeps the current one.
        desired_vcpus : int or None, optional
            New desired count; None keeps the current one (raised to ``min_vcpus`` if lower).
        max_vcpus : int or None, optional
            New maximum; None keeps the current one.

        Returns
        -------
        dict
            The compute environment's entry of :meth:`status` after the update.

        Raises
        ------
        InputError
            The compute environment does not exist (run ``pna stack up``), the values break
            ``0 <= min <= desired <= max``, or an AWS call failed.
        """
        ce = self._describe_ce()
        if ce is None:
            raise InputError(f"compute environment {self.settings.compute_environment!r} does not "
                             "exist: run 'pna stack up' first")
        cr = ce.get("computeResources", {})
        mn = cr.get("minvCpus", 0) if min_vcpus is None else int(min_vcpus)
        mx = cr.get("maxvCpus", 0) if max_vcpus is None else int(max_vcpus)
        ds = max(mn, cr.get("desiredvCpus", 0)) if desired_vcpus is None else int(desired_vcpus)
        if not 0 <= mn <= ds <= mx:
            raise InputError(f"vCPUs must satisfy 0 <= min ({mn}) <= desired ({ds}) <= max ({mx})")
        new = {"maxvCpus": mx} if self.fargate else {"minvCpus": mn, "desiredvCpus": ds,
                                                     "maxvCpus": mx}
        self._call("batch", "update_compute_environment",
                   computeEnvironment=self.settings.compute_environment, computeResources=new)
        return self.status()["compute_environment"]

    def down(self, delete: bool = False) -> dict[str, str]:
        """Scale the compute environment to zero; with ``delete`` remove queue, compute
        environment and job definitions too (the bucket, roles and images stay).

        Parameters
        ----------
        delete : bool, optional
            False (default): set min and desired vCPUs to 0 and keep the maximum. True: disable
            and delete the queue and compute environment, deregister every active job
            definition revision.

        Returns
        -------
        dict
            Resource -> ``scaled to 0``, ``deleted``, ``deregistered``, or ``absent`` when
            there is no compute environment (nothing is done then).

        Raises
        ------
        InputError
            An AWS call failed (credentials, permissions, network).
        """
        done: dict[str, str] = {}
        ce = self._describe_ce()
        if ce is None:
            return {f"compute-environment:{self.settings.compute_environment}": "absent"}
        if not delete:
            cr = ce.get("computeResources", {})
            self.scale(0, 0, cr.get("maxvCpus", self.settings.max_vcpus))
            return {f"compute-environment:{self.settings.compute_environment}": "scaled to 0"}
        q = self._describe_queue()
        if q is not None:
            self._call("batch", "update_job_queue", jobQueue=self.settings.job_queue,
                       state="DISABLED")
            self._wait_valid("job queue", self._describe_queue)
            self._call("batch", "delete_job_queue", jobQueue=self.settings.job_queue)
            done[f"job-queue:{self.settings.job_queue}"] = "deleted"
        self._call("batch", "update_compute_environment",
                   computeEnvironment=self.settings.compute_environment, state="DISABLED")
        self._wait_valid("compute environment", self._describe_ce)
        for _ in range(100):  # the queue must be gone before the compute environment goes
            if self._describe_queue() is None:
                break
            self._sleep(3)
        self._call("batch", "delete_compute_environment",
                   computeEnvironment=self.settings.compute_environment)
        done[f"compute-environment:{self.settings.compute_environment}"] = "deleted"
        for d in self._call("batch", "describe_job_definitions",
                            jobDefinitionName=self.settings.job_definition,
                            status="ACTIVE")["jobDefinitions"]:
            self._call("batch", "deregister_job_definition", jobDefinition=d["jobDefinitionArn"])
        done[f"job-definition:{self.settings.job_definition}"] = "deregistered"
        return done
