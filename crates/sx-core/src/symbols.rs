//! Interned names for symbols and keywords.

use std::rc::Rc;

#[derive(Default)]
pub struct Interner {
    names: Vec<Rc<str>>,
    ids: hashbrown::HashMap<Rc<str>, u32>,
}

impl Interner {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let rc: Rc<str> = Rc::from(name);
        self.names.push(rc.clone());
        self.ids.insert(rc, id);
        id
    }

    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map(|s| &**s).unwrap_or("?")
    }

    pub fn name_rc(&self, id: u32) -> Rc<str> {
        self.names.get(id as usize).cloned().unwrap_or_else(|| Rc::from("?"))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
