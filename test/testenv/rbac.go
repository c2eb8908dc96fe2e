package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kdnsd/kdnsd/test/wait"
)

// RBACFile is kdnsd's shipped RBAC, relative to the repository root.
const RBACFile = "deploy/statefulset/rbac.yaml"

type manifestObject struct {
	doc int
	obj runtime.Object
}

// loadManifests decodes every document of the multi-document YAML file at path.
func loadManifests(path string) ([]manifestObject, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	dec := scheme.Codecs.UniversalDeserializer()
	var objs []manifestObject
	for doc := 1; ; doc++ {
		raw, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("testenv: %s: %w", path, err)
		}
		if blankYAML(raw) {
			continue
		}
		obj, _, err := dec.Decode(raw, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("testenv: %s, document %d: %w", path, doc, err)
		}
		objs = append(objs, manifestObject{doc, obj})
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("testenv: %s holds no objects", path)
	}
	return objs, nil
}

// blankYAML reports whether a YAML document holds only comments and blanks.
func blankYAML(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// applyRBAC creates the shipped objects, adds the static-token user kdnsd to
// every ClusterRoleBinding of ClusterRole kdnsd, and waits until the RBAC
// authorizer grants kdnsd what the role says.
func (e *Env) applyRBAC(ctx context.Context, objs []manifestObject) error {
	admin, _, err := e.newClients()
	if err != nil {
		return err
	}
	boundUser := false
	for _, o := range objs {
		var err error
		switch obj := o.obj.(type) {
		case *corev1.ServiceAccount:
			// The namespace (kube-system) is made by the API server's
			// system-namespaces controller shortly after /readyz.
			err = retryNotFound(ctx, func() error {
				_, err := admin.CoreV1().ServiceAccounts(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{})
				return err
			})
		case *rbacv1.ClusterRole:
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, obj, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			if obj.RoleRef.Kind == "ClusterRole" && obj.RoleRef.Name == "kdnsd" {
				obj = obj.DeepCopy()
				obj.Subjects = append(obj.Subjects, rbacv1.Subject{
					Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: KdnsdUser,
				})
				boundUser = true
			}
			_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, obj, metav1.CreateOptions{})
		case *rbacv1.Role:
			err = retryNotFound(ctx, func() error {
				_, err := admin.RbacV1().Roles(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{})
				return err
			})
		case *rbacv1.RoleBinding:
			err = retryNotFound(ctx, func() error {
				_, err := admin.RbacV1().RoleBindings(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{})
				return err
			})
		default:
			return fmt.Errorf("testenv: %s, document %d: unexpected kind %s", RBACFile, o.doc, o.obj.GetObjectKind().GroupVersionKind().Kind)
		}
		if err != nil {
			return fmt.Errorf("testenv: applying %s, document %d: %w", RBACFile, o.doc, err)
		}
	}
	if !boundUser {
		return fmt.Errorf("testenv: %s has no ClusterRoleBinding to ClusterRole kdnsd", RBACFile)
	}
	return e.waitKdnsdAccess(ctx)
}

// waitKdnsdAccess waits until the kdnsd identity may list services: RBAC is
// enforced from informers, which learn of a new binding (or, after a
// restart, of all of them) a moment later.
func (e *Env) waitKdnsdAccess(ctx context.Context) error {
	_, kdnsd, err := e.newClients()
	if err != nil {
		return err
	}
	var last error
	err = wait.Until(ctx, "the kdnsd identity to be granted its ClusterRole", func() (bool, error) {
		_, last = kdnsd.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 1})
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("testenv: %w (last: %v)", err, last)
	}
	return nil
}

func retryNotFound(ctx context.Context, create func() error) error {
	var err error
	perr := wait.Until(ctx, "the namespace to exist", func() (bool, error) {
		err = create()
		return !apierrors.IsNotFound(err), nil
	})
	if perr != nil {
		return perr
	}
	return err
}
