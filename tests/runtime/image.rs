//! A container whose root filesystem is the real busybox image, imported
//! into the image store and mounted as an overlay.

use std::path::PathBuf;

use driftless_image::ImageStore;
use driftless_runtime::{ContainerConfig, Status};

use crate::images::busybox_layout;
use crate::{DEADLINE, Node};

/// Unmounts the root filesystem even when the test fails.
struct Unmount<'a>(&'a Node, &'a str);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        if let Ok(Some(Status::Running { .. })) = self.0.layout.status(self.1)
            && self.0.layout.kill(self.1, nix::sys::signal::Signal::SIGKILL).is_ok()
        {
            let _ = self.0.layout.wait(self.1, DEADLINE);
        }
        let _ = self.0.layout.remove(self.1);
    }
}

#[test]
fn runs_the_busybox_image_on_an_overlay_and_keeps_the_image_untouched() {
    let node = Node::new("image");
    let store = ImageStore::open(node.dir.path().join("data")).unwrap();
    store.import(busybox_layout(), Some("busybox")).unwrap();
    let image = store.resolve("busybox:1.35").unwrap();
    assert_eq!(image.config.cmd, ["sh"]);

    let id = "c-image";
    let _unmount = Unmount(&node, id);
    let rootfs = node.layout.mount_rootfs(id, &image.layers).unwrap();
    let config = ContainerConfig {
        id: id.to_owned(),
        rootfs: rootfs.clone(),
        args: vec!["sh".into(), "-c".into(), "cat /www/index.html; echo changed > /www/index.html; id -u".into()],
        env: image.config.env.clone(),
        cwd: "/".into(),
        cgroups_path: PathBuf::from(format!("/{}/{id}", node.cgroup_parent)),
        ..Default::default()
    };
    node.start(&config);
    let status = node.layout.wait(id, DEADLINE).unwrap();
    let log = node.log(id);
    assert!(matches!(status, Status::Exited { ref exit, .. } if exit.code == 0), "{status:?}\n{log}");
    assert!(log.contains(" stdout F 0\n"), "{log}");
    assert!(log.lines().any(|l| l.contains(" stdout F ") && l.to_lowercase().contains("busybox")), "the image's page is served: {log}");

    // The write went to the container's own layer, never to the image's.
    let page: Vec<_> = image.layers.iter().map(|l| l.join("www/index.html")).filter(|p| p.exists()).collect();
    assert!(!page.is_empty());
    for p in page {
        assert_ne!(std::fs::read_to_string(&p).unwrap(), "changed\n", "{} was modified", p.display());
    }
    node.layout.remove(id).unwrap();
    assert!(!std::fs::read_to_string("/proc/mounts").unwrap().contains(rootfs.to_str().unwrap()), "rootfs still mounted");
}
